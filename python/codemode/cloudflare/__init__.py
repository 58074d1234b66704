"""Run programs on Cloudflare Workers: :class:`CloudflareDriver`, and the Worker it talks to
(:func:`~codemode.cloudflare.bundle.worker_script`; a local one with
:class:`~codemode.cloudflare.local.LocalWorker`)."""

from ._driver import CloudflareContext, CloudflareDriver

__all__ = ["CloudflareContext", "CloudflareDriver"]
