"""Front ends that put the model in front of somebody else's arena, over the network.

`lichess.LichessBot` plays on Lichess through berserk (`gamegpt bot lichess --config FILE`); `config`
reads its YAML file; `api` holds the network rules (timeouts, retries with backoff, the 429 pause);
`game` plays one game per thread; `challenges` decides which challenges to accept; `moves` turns the
model and the clock into a legal move in time; `pgn` saves finished games; `redact` keeps the token out
of every log line.
"""
