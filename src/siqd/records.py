"""A small base for plain data classes used by the daemon.

The standard dataclasses module would do the same, but importing it loads
`inspect` and its dependencies, which adds about 1.3 MB to siqd's resident
memory (measured on Python 3.11 beside psutil and sqlite3). The daemon's
memory budget is about 20 MB, so it goes without.
"""


class Factory:
    """A default made fresh for each instance, like dataclasses' default_factory."""

    def __init__(self, make):
        self.make = make


class Record:
    """Fields are the class annotations, in order; class attributes of the same name are defaults."""

    _field_names: tuple[str, ...] = ()
    _defaults: dict = {}

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        names: list[str] = []
        defaults: dict = {}
        for klass in reversed(cls.__mro__):
            for name in klass.__dict__.get("__annotations__", {}):
                if name.startswith("_"):
                    continue
                if name not in names:
                    names.append(name)
                if name in klass.__dict__:
                    defaults[name] = klass.__dict__[name]
        cls._field_names = tuple(names)
        cls._defaults = defaults

    def __init__(self, *args, **kwargs):
        if len(args) > len(self._field_names):
            raise TypeError(f"{type(self).__name__} takes at most {len(self._field_names)} positional arguments")
        values = dict(zip(self._field_names, args))
        for name, value in kwargs.items():
            if name not in self._field_names:
                raise TypeError(f"{type(self).__name__} has no field {name!r}")
            if name in values:
                raise TypeError(f"{type(self).__name__} got field {name!r} twice")
            values[name] = value
        for name in self._field_names:
            if name in values:
                value = values[name]
            elif name in self._defaults:
                default = self._defaults[name]
                value = default.make() if isinstance(default, Factory) else default
            else:
                raise TypeError(f"{type(self).__name__} is missing field {name!r}")
            setattr(self, name, value)
        post_init = getattr(self, "__post_init__", None)
        if post_init is not None:
            post_init()

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._field_names)
        return f"{type(self).__name__}({shown})"

    def __eq__(self, other) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return all(getattr(self, name) == getattr(other, name) for name in self._field_names)

    __hash__ = None
