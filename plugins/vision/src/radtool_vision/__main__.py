"""``python -m radtool_vision`` runs the classify commands, e.g. under torchrun:

    torchrun --nproc_per_node 4 -m radtool_vision train --plugin convnext ...
"""

from .cli import app

if __name__ == "__main__":
    app(prog_name="python -m radtool_vision")
