"""What every study step imports, imported once by the server that forks the steps
(:func:`interp.study.child.forked_step`): a step forked from it starts with torch, transformers
(the Llama, Mistral and Qwen2 modelling code, masks, generation), peft, pandas, scipy,
statsmodels and every command's module already in memory, instead of spending seconds of CPU
importing them again (each of the embedded study's 18 steps did).

Importing runs no tensor computation (so no thread pool exists yet when a step is forked, and the
step sets its own thread count).
"""

from __future__ import annotations

import pandas  # noqa: F401
import peft
import peft.tuners.lora  # noqa: F401
import scipy.stats  # noqa: F401
import statsmodels.api  # noqa: F401
import torch  # noqa: F401
import transformers
import transformers.generation
import transformers.masking_utils
import transformers.models.llama.modeling_llama
import transformers.models.mistral.modeling_mistral
import transformers.models.qwen2.modeling_qwen2  # noqa: F401

from interp.commands.registry import COMMANDS

for _command in COMMANDS:
    _command.config_class()
    _command.run_function()
