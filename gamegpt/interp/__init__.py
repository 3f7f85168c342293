"""Looking inside models: activations, linear board probes, interventions, sparse autoencoders, meta-SAEs.

Layer: beside eval (it reads models and games, plays nothing); experiments and cli import it, nothing below does.

  labels.py        what each position is: board squares (white/black and mine/theirs), side to move, check, value
  sources.py       the games looked at: expert and random games of tic-tac-toe and chess, seeded
  activations.py   a model run over games with hooks; the residual stream after each layer and each MLP's
                   output at the probe positions, cached to disk (numpy .npy memmaps + JSON labels)
  probes.py        linear probes per layer, with a random-init model and the majority class as controls
  intervention.py  adding a probe direction to flip one square; do the legal moves follow the edited board?
  sae.py           sparse autoencoders (ReLU+L1 with unit-norm decoder columns, TopK), their metrics
  meta_sae.py      an SAE on the SAE's decoder directions
  figures.py       boards drawn with matplotlib
"""
