"""A sparse-autoencoder view of the warmth direction.

- :mod:`.activations`: every-token residual activations, sharded and resumable;
- :mod:`.sources`: the texts (study prompts, the model's replies, reply triples, a local corpus);
- :mod:`.train`: sae-lens TopK / JumpReLU training on those activations;
- :mod:`.quality`: explained variance, spliced loss, dead latents;
- :mod:`.decompose`: directions in latents (cosines, attribution, examples, overlap nulls);
- :mod:`.intervene`: latent ablation / clamping as hook edits with the error added back;
- :mod:`.decomposition`: directions in latents (``interp sae decompose``); latent edits run as
  verdict arms (:func:`.intervene.latent_arms`);
- :mod:`.load`: our folders or published SAEs by release and id.
"""
