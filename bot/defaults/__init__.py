"""The default source list and categories, shipped inside the package so that an installed
wheel (the Docker image) finds them without a checkout; `bot.config` names them through
`importlib.resources`. Operators point `AINEWS_SOURCES_FILE` / `AINEWS_CATEGORIES_FILE` at
their own copies instead of editing these."""
