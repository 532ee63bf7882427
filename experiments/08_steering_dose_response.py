"""Figure `steering_dose_response`: run (or reuse) the study steps behind it, then draw it.

Usage: python experiments/08_steering_dose_response.py [--preset embedded|tiny]
    [--paper-data ../shared/data/warm_ai_2025]
"""

from interp.study.experiment import main

if __name__ == "__main__":
    raise SystemExit(main("steering_dose_response"))
