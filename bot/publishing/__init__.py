"""What every chat platform needs, written once: the briefing thread (claim, post, record,
resume), DM fan-out with per-user cursors, stored replies for share and paging, and the command
flow. A platform adapter implements the small ports in `ports.py` and nothing more."""
