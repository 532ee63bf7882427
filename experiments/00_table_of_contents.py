"""The study's table of contents: step -> command -> artifact -> figure ids.

Usage: python experiments/00_table_of_contents.py [preset]
"""

import sys

from interp.study.experiment import table_of_contents

if __name__ == "__main__":
    preset = sys.argv[1] if len(sys.argv) > 1 else "embedded"
    print("| step | command | artifact | figures |\n|---|---|---|---|")
    for row in table_of_contents(preset):
        print("| " + " | ".join(f"`{c}`" if i == 1 else c for i, c in enumerate(row)) + " |")
