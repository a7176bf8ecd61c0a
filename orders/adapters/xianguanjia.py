from .base import Adapter


class XianguanjiaAdapter(Adapter):
    platform = "xianguanjia"
