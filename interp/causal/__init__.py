"""The causal layer: everything that edits a model and measures what changes.

- :mod:`.pair`: the original and warm models an experiment compares;
- :mod:`.inputs`: prompts, reply triples, residual norms, the warmth scorer, named directions;
- :mod:`.arms`: an arm (a model variant with its edits per site) and how it is scored;
- :mod:`.verdict`: does removing warmth restore reliability (arms, table, sentence);
- :mod:`.readouts`, :mod:`.layer_runner`, :mod:`.sweep`: the steering dose-response sweep that
  runs each setting from a shared prefix;
- :mod:`.patching`: activation patching between the two models.
"""
