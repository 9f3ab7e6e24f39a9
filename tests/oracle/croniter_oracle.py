"""The differential test's oracle for classic 5-field cron: croniter.

Reads cases from standard input, one a line:
    <zone id> TAB <start, epoch seconds> TAB <count> TAB <expression>
and writes one answer a line, in the same order:
    OK TAB <fire time, epoch seconds>,<...>   (fewer than count when the schedule ends)
    ERR TAB <croniter's message>
"""

import sys
from datetime import datetime
from zoneinfo import ZoneInfo

from croniter import croniter, CroniterBadDateError


def answer(zone, start, count, expression):
    try:
        it = croniter(expression, datetime.fromtimestamp(start, ZoneInfo(zone)))
    except Exception as e:  # croniter refuses the expression
        return "ERR\t" + str(e).replace("\t", " ").replace("\n", " ")
    times = []
    try:
        for _ in range(count):
            times.append(str(int(it.get_next(float))))
    except CroniterBadDateError:
        pass  # no further fire time
    return "OK\t" + ",".join(times)


def main():
    out = []
    for line in sys.stdin:
        zone, start, count, expression = line.rstrip("\n").split("\t", 3)
        out.append(answer(zone, int(start), int(count), expression))
    sys.stdout.write("\n".join(out) + ("\n" if out else ""))


main()
