"""Result tables as LaTeX (booktabs) for the appendix."""

from __future__ import annotations

import pandas as pd

from interp.report.formatting import formatted

_SPECIAL = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "–": "--",
}


def escape(text: str) -> str:
    """Escape LaTeX's special characters."""
    return "".join(_SPECIAL.get(ch, ch) for ch in str(text))


def booktabs_table(df: pd.DataFrame, caption: str, label: str, max_rows: int | None = None) -> str:
    """A ``table`` environment with a booktabs ``tabular`` (needs ``\\usepackage{booktabs}``).
    Numeric columns are right-aligned; rows beyond ``max_rows`` are counted in a note."""
    text, left_out = formatted(df, max_rows)
    align = "".join("r" if pd.api.types.is_numeric_dtype(df[c]) else "l" for c in df.columns)
    lines = [
        r"\begin{table}[htbp]",
        r"\centering",
        r"\small",
        rf"\caption{{{escape(caption)}}}",
        rf"\label{{{escape(label)}}}",
        rf"\begin{{tabular}}{{{align}}}",
        r"\toprule",
        " & ".join(escape(c) for c in df.columns) + r" \\",
        r"\midrule",
    ]
    lines += [" & ".join(escape(v) for v in row) + r" \\" for row in text.itertuples(index=False)]
    lines.append(r"\bottomrule")
    lines.append(r"\end{tabular}")
    if left_out:
        lines.append(rf"\par\footnotesize{{{left_out} more rows in the CSV.}}")
    lines.append(r"\end{table}")
    return "\n".join(lines) + "\n"
