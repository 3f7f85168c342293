"""The `gamegpt` command: one module per command group, each registered here.

User errors (bad path, malformed file, corrupt checkpoint, unknown player) print one line and exit 2.
Nothing else in the package imports this package. Each command imports what it needs when it runs, so
`gamegpt --help` and `gamegpt uci` start without loading torch.
"""

from __future__ import annotations

import click

from gamegpt.cli import bot, data, evaluate, experiment, interp, model, play, puzzles, recipe, selfplay, train, uci_engine
from gamegpt.cli.common import Group
from gamegpt.cli.tournament import tournament
from gamegpt.cli.match import match


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="gamegpt")
def main() -> None:
    """gamegpt: small GPTs that learn games from transcripts, and play them.

    \b
    The pipeline, tic-tac-toe:
      gamegpt selfplay tictactoe --games 5000 --out data/ttt.jsonl   # game records
      gamegpt data shards data/ttt.jsonl --out data/ttt              # token shards
      gamegpt train --data data/ttt --out runs/ttt                   # checkpoints
      gamegpt eval tictactoe --model runs/ttt                        # scores, JSON, PNG
      gamegpt play tictactoe                                         # you against the shipped model
      gamegpt experiment noise                                       # the transcendence study
    """


main.add_command(selfplay.selfplay)
main.add_command(data.data)
main.add_command(train.train)
main.add_command(model.model)
main.add_command(evaluate.eval)
main.add_command(experiment.experiment)
main.add_command(recipe.recipe)
main.add_command(puzzles.puzzles)
main.add_command(tournament)
main.add_command(match)
main.add_command(play.play)
main.add_command(uci_engine.uci)
main.add_command(bot.bot_group)
main.add_command(interp.activations)
main.add_command(interp.probe)
main.add_command(interp.intervene)
main.add_command(interp.sae)
