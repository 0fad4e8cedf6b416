"""The one base of the lab's panels: named controls, a message line where user errors appear (the panel keeps
working), set-many-then-redraw-once, uploads read and fitted to the model's input, and one way to show pictures
(PNG bytes into ``ipywidgets.Image``, never an ``Output`` written while a cell runs: nbclient#312).

A panel subclass builds its widgets, registers each control with :meth:`Panel.control` (naming the handler
that a change runs) and implements those handlers; :meth:`Panel.guard` runs them so that a
:class:`~lumbarlab.errors.LumbarLabError` becomes the message line instead of a traceback.

Example:
    >>> import ipywidgets as w
    >>> class Echo(Panel):
    ...     css = "ll-echo"
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.text = w.HTML()
    ...         self.control("word", w.Text("hi"), self._on_word)
    ...         self.widget = w.VBox([*self.controls.values(), self.text, self.message])
    ...     def _on_word(self):
    ...         if not self.controls["word"].value:
    ...             raise LumbarLabError("type a word.")
    ...         self.text.value = self.controls["word"].value.upper()
    >>> panel = Echo()
    >>> panel.set(word="spine"); panel.text.value
    'SPINE'
    >>> panel.set(word=""); "type a word" in panel.message.value
    True
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import numpy as np

from lumbarlab.errors import LumbarLabError

__all__ = ["Panel"]


class Panel:
    """Base panel. Subclasses set :attr:`css` (the prefix of their CSS classes, which browser tests find),
    register controls with :meth:`control` and put :attr:`message` somewhere in :attr:`widget`."""

    css: str = "ll-panel"

    def __init__(self) -> None:
        import ipywidgets as w

        self.controls: dict[str, object] = {}
        self._handlers: dict[str, Callable[[], None]] = {}
        self._holding = False
        self.message = w.HTML()
        self.message.add_class(f"{self.css}-message")
        self.widget = None

    # -- controls -----------------------------------------------------------------------------------
    def control(self, name: str, widget, handler: Callable[[], None], continuous: bool = False):
        """Register ``widget`` as control ``name``: a change runs ``handler`` (guarded), and the widget gets the CSS
        class ``<css>-<name>``. Sliders update on release unless ``continuous`` (for handlers of a few ms)."""
        if hasattr(widget, "continuous_update"):
            widget.continuous_update = continuous
        widget.add_class(f"{self.css}-{name}")
        self.controls[name] = widget
        self._handlers[name] = handler

        def changed(_change, name=name):
            if not self._holding:
                self.guard(self._handlers[name])

        widget.observe(changed, names="value")
        return widget

    def set(self, **values) -> None:
        """Set controls by name, as a user would, then run each affected handler once."""
        unknown = set(values) - set(self.controls)
        if unknown:
            raise LumbarLabError(f"no control {', '.join(map(repr, sorted(unknown)))}; choose from "
                                 f"{', '.join(self.controls)}.")
        with self.holding():
            for key, value in values.items():
                self.controls[key].value = value
        for handler in dict.fromkeys(self._handlers[key] for key in values):  # once each, in order
            self.guard(handler)

    def values(self) -> dict:
        """Every control's value by name; a ``seed`` control, when there is one, must be 0 or more (a phantom's
        anatomy seed), else LumbarLabError."""
        values = {k: ctl.value for k, ctl in self.controls.items()}
        if "seed" in values and int(values["seed"]) < 0:
            raise LumbarLabError("the phantom seed must be 0 or more.")
        return values

    @contextlib.contextmanager
    def holding(self):
        """Within this block control changes run no handler (e.g. while a panel fills a control's options)."""
        before, self._holding = self._holding, True
        try:
            yield
        finally:
            self._holding = before

    # -- errors --------------------------------------------------------------------------------------
    def guard(self, action: Callable[[], object]) -> bool:
        """Run ``action``; a LumbarLabError becomes the message line (the panel keeps its last good state),
        success clears it. Returns whether it succeeded."""
        from lumbarlab.widgets.upload import error_html

        try:
            action()
        except LumbarLabError as exc:
            self.message.value = error_html(f"{self.css}-error", exc)
            return False
        self.message.value = ""
        return True

    # -- uploads ------------------------------------------------------------------------------------
    def upload_control(self, on_image: Callable[[str, np.ndarray], None], size: int,
                       accept: str = ".png,.jpg,.jpeg,.dcm", description: str = "Upload radiograph"):
        """A FileUpload whose file is decoded (PNG, JPEG, DICOM of any installed syntax), checked and fitted to
        ``size``² like the zoo's training images, then handed to ``on_image(name, image)`` — guarded."""
        import ipywidgets as w

        upload = w.FileUpload(accept=accept, multiple=False, description=description)
        upload.add_class(f"{self.css}-upload")

        def changed(change):
            from lumbarlab.widgets.upload import read_upload

            def run():
                got = read_upload(change, size)
                if got is not None:
                    on_image(*got)
            self.guard(run)

        upload.observe(changed, names="value")
        self._on_upload = changed  # scripts and tests can hand it a FileUpload change directly
        return upload

    def volume_upload_control(self, on_volume: Callable[[str, bytes], None], description: str,
                              accept: str = ".nii,.gz,.mha,.mhd,.nrrd,.zip"):
        """A FileUpload for a volume (NIfTI, MHA, NRRD, or a zip of one DICOM series): the file's name and bytes go
        to ``on_volume(name, content)`` — guarded, so a bad file becomes the message line."""
        import ipywidgets as w

        upload = w.FileUpload(accept=accept, multiple=False, description=description)
        upload.add_class(f"{self.css}-upload")

        def changed(change):
            from lumbarlab.widgets.upload import first_upload

            got = first_upload(change)
            if got is not None:
                self.guard(lambda: on_volume(*got))

        upload.observe(changed, names="value")
        self._on_upload = changed  # scripts and tests can hand it a FileUpload change directly
        return upload

    # -- display ------------------------------------------------------------------------------------
    @staticmethod
    def show(image_widget, picture) -> None:
        """Put a picture into an ``ipywidgets.Image``: PNG bytes as they are, or an array (grey in [0, 1] or
        uint8 grey/RGB) encoded to PNG."""
        if isinstance(picture, (bytes, bytearray)):
            image_widget.value = bytes(picture)
            return
        from lumbarlab.widgets.svg import encode_png

        arr = np.asarray(picture)
        if arr.dtype != np.uint8:
            arr = (255 * np.clip(arr, 0, 1)).astype(np.uint8)
        image_widget.value = encode_png(arr)

    def _ipython_display_(self):  # display(panel) shows the panel
        from IPython.display import display

        display(self.widget)
