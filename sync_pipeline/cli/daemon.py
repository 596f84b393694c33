"""`dagster-daemon` with quiet sensor logs: the per-tick "checking"/"skipping" lines (one every 5 s) are dropped.

Every other line (runs launched, sensor errors, warnings) stays.
"""

from __future__ import annotations

import logging
import sys

# Lines the sensor daemon writes on every tick of every sensor, whether or not anything happens.
CHATTER_STARTS = ("Checking for new runs for sensor: ", "No run requests returned for ")
CHATTER_ENDS = ("skipped: Sensor function returned an empty result",)


class DropSensorChatter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not (message.startswith(CHATTER_STARTS) or message.endswith(CHATTER_ENDS))


def main() -> None:
    logging.getLogger("dagster.daemon.SensorDaemon").addFilter(DropSensorChatter())
    from dagster._daemon.cli import main as dagster_daemon

    sys.argv[0] = "dagster-daemon"
    dagster_daemon()


if __name__ == "__main__":
    main()
