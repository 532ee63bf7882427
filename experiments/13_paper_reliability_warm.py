"""Figure `paper_reliability_warm`: run (or reuse) the study steps behind it, then draw it.

Usage: python experiments/13_paper_reliability_warm.py [--preset embedded|tiny]
    [--paper-data ../shared/data/warm_ai_2025]
"""

from interp.study.experiment import main

if __name__ == "__main__":
    raise SystemExit(main("paper_reliability_warm"))
