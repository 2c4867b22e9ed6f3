"""The application state, in parts that emit signals; widgets subscribe to the part they show.

:class:`AppState` composes :class:`Structures` (documents and selection),
:class:`Predictions` (models, devices, predictions), :class:`MeasuredSpectra`
(measured spectra, alignment, comparisons), :class:`Simulations` (FEFF10),
:class:`Interpret` (calibration, fit, Identify, LCF, Refine) and
:class:`View` (view settings), and shares one :class:`Messages` channel.

Everything slow runs in :mod:`xanes_gui.tasks` workers; results are applied in
the main thread, so every signal (and the widget updates it triggers) comes from
the GUI thread. Held data are frozen dataclasses: a change replaces the object
and emits a signal.
"""

from xanes_gui.state.appstate import AppState
from xanes_gui.state.interpret import Interpret
from xanes_gui.state.measured import MeasuredSpectra
from xanes_gui.state.messages import Messages
from xanes_gui.state.predictions import AUTO_MODEL, Predictions
from xanes_gui.state.simulations import Simulations
from xanes_gui.state.structures import Structures, StructureDoc
from xanes_gui.state.view import View, ViewSettings

__all__ = ["AUTO_MODEL", "AppState", "Interpret", "MeasuredSpectra", "Messages", "Predictions", "Simulations",
           "StructureDoc", "Structures", "View", "ViewSettings"]
