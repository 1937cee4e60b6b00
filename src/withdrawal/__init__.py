"""withdrawal: evidence-based decision support on tramadol and opioid withdrawal.

Decision support for clinicians and plain information for patients; never a
self-treatment guide. Every clinical statement traces to a source stored in the
knowledge base (``withdrawal.knowledge``).
"""

__version__ = "0.1.0"
