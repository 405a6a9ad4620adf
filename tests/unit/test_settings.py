"""The settings read from the environment: defaults, and values refused by name."""

from __future__ import annotations

import pytest

from chalicelib.settings import (
    CONNECT_TIMEOUT_SECONDS,
    INTEGRATOR_TIMEOUT_VARIABLE,
    OUTBOUND_TIMEOUT_VARIABLE,
    Settings,
    SettingsError,
)


def test_integrators_get_five_seconds_and_platforms_ten_unless_set():
    default = Settings.from_environ({})
    assert default.integrator_timeout == (CONNECT_TIMEOUT_SECONDS, 5.0)
    assert default.outbound_timeout == (CONNECT_TIMEOUT_SECONDS, 10.0)
    tuned = Settings.from_environ(
        {INTEGRATOR_TIMEOUT_VARIABLE: "2", OUTBOUND_TIMEOUT_VARIABLE: "1"}
    )
    assert (tuned.integrator_timeout, tuned.outbound_timeout) == ((2.0, 2.0), (1.0, 1.0))


@pytest.mark.parametrize("value", ["0", "-1", "901", "soon"])
def test_an_unusable_timeout_is_refused_naming_its_variable(value):
    with pytest.raises(SettingsError, match=INTEGRATOR_TIMEOUT_VARIABLE):
        Settings.from_environ({INTEGRATOR_TIMEOUT_VARIABLE: value})
