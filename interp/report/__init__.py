"""The study report: one self-contained HTML page, a Markdown twin and LaTeX (booktabs) tables,
with every figure, the verdict sentence(s) with their numbers and each result's provenance."""

from interp.report.collect import collect_tables, result_tables, verdict_text
from interp.report.latex import booktabs_table
from interp.report.provenance import provenance_table
from interp.report.results import ResultTable, load_results
from interp.report.verdict import verdict_sentences
from interp.report.write import write_report

__all__ = [
    "ResultTable",
    "booktabs_table",
    "collect_tables",
    "load_results",
    "provenance_table",
    "result_tables",
    "verdict_sentences",
    "verdict_text",
    "write_report",
]
