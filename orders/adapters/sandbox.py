from .base import Adapter


class SandboxAdapter(Adapter):
    platform = "sandbox"
