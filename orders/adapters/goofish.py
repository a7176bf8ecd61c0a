from .base import Adapter


class GoofishAdapter(Adapter):
    platform = "goofish"
