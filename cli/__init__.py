"""The `vid2act` command line: thin Typer commands over the vid2act library."""
