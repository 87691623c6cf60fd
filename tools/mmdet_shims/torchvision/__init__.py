"""Empty stand-in for ``torchvision`` inside ``.venv-mmdet``.

PyPI's torchvision wheels are CUDA builds that do not load beside the CPU-only
torch used here, and mmcv 1.4.0 only imports torchvision for things this
project never uses (``torchvision://`` checkpoint URLs in
``mmcv/runner/checkpoint.py`` and the version string in ``collect_env``).
``tools/mmdet_shims`` must come first on ``sys.path`` for this to be found.
Anything that really needs torchvision fails loudly with AttributeError.
"""

__version__ = "0.0.0+ghm-shim"
IS_GHM_SHIM = True
