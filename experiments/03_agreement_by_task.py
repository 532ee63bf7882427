"""Figure `agreement_by_task`: run (or reuse) the study steps behind it, then draw it.

Usage: python experiments/03_agreement_by_task.py [--preset embedded|tiny]
    [--paper-data ../shared/data/warm_ai_2025]
"""

from interp.study.experiment import main

if __name__ == "__main__":
    raise SystemExit(main("agreement_by_task"))
