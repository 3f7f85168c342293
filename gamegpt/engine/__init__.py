"""The inference engine: the model as a player, and the front ends (UCI) that put it in front of others."""
