"""mcbench's Hydra configs (installed as ``mcbench.conf``).

Hydra imports this package before it reads a YAML file here (``pkg://mcbench.conf``), whoever composes (the
``mcbench`` command, ``hydra.compose`` in the tools and tests): every method's ``Config`` dataclass is then stored
in Hydra's ConfigStore as ``method_schema/<name>``, the schema that ``method/<name>.yaml`` extends
(``mcbench.validation.register_method_schemas``; read from the methods' source, no torch imported).
"""

from mcbench.validation import register_method_schemas

register_method_schemas()
