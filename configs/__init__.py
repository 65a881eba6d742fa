"""The Hydra configs, shipped as the package ``edge_taaf.configs`` (pyproject.toml maps it onto this folder).

Config groups: data/, encoder/, model/, loss/, trainer/, quant/, hardware/; apps: pipeline.yaml,
train.yaml, export.yaml, simulate.yaml, data_app.yaml. Read the folder through ``edge_taaf.CONFIG_DIR``.
"""
