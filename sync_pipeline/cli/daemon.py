"""`dagster-daemon` with quiet sensor logs: the per-tick "checking"/"skipping" lines (one every 5 s) are dropped.

Every other line (runs launched, sensor errors, warnings) stays. `SYNC_PIPELINE_SENSOR_LOOP_SECONDS` sets how often
the sensor loop passes (Dagster's is every 5 s): the demo passes every second, so a triggered sync starts and its
webhook leaves within a second instead of up to five.
"""

from __future__ import annotations

import logging
import os
import sys

# Lines the sensor daemon writes on every tick of every sensor, whether or not anything happens.
CHATTER_STARTS = ("Checking for new runs for sensor: ", "No run requests returned for ")
CHATTER_ENDS = ("skipped: Sensor function returned an empty result",)
SENSOR_LOOP_ENV = "SYNC_PIPELINE_SENSOR_LOOP_SECONDS"


class DropSensorChatter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not (message.startswith(CHATTER_STARTS) or message.endswith(CHATTER_ENDS))


def main() -> None:
    logging.getLogger("dagster.daemon.SensorDaemon").addFilter(DropSensorChatter())
    if os.environ.get(SENSOR_LOOP_ENV):
        # Dagster reads this module constant on every pass of the loop; it has no setting for it.
        import dagster._daemon.sensor as sensor_daemon

        sensor_daemon.MIN_INTERVAL_LOOP_TIME = float(os.environ[SENSOR_LOOP_ENV])
    from dagster._daemon.cli import main as dagster_daemon

    sys.argv[0] = "dagster-daemon"
    dagster_daemon()


if __name__ == "__main__":
    main()
