"""The V8 engine (``codemode[v8-engine]``): V8's JIT for programs that compute, with the same
contract and limits as the embedded QuickJS engine.

``create_code_mode(tools, driver=codemode.V8Driver())``. Importing this package needs nothing
beyond codemode; the Node.js runtime of the extra is looked up when the driver is first used.
"""

from ._driver import V8Context, V8Driver, find_node

__all__ = ["V8Context", "V8Driver", "find_node"]
