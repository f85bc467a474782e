"""The composition root: the command line (`cli`) and the local service supervisor
(`services`). The only package that wires the kernel (`tradepipe`) to the research and live
sides; nothing below it imports it (the import contracts in pyproject.toml say so)."""
