"""Figure `paper_reliability_cold`: run (or reuse) the study steps behind it, then draw it.

Usage: python experiments/14_paper_reliability_cold.py [--preset embedded|tiny]
    [--paper-data ../shared/data/warm_ai_2025]
"""

from interp.study.experiment import main

if __name__ == "__main__":
    raise SystemExit(main("paper_reliability_cold"))
