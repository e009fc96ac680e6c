"""Which of Faust's built-in web pages the worker serves: none that show its state.

Faust's web server (the worker's web port, the one Prometheus scrapes for ``/metrics``) mounts
built-in blueprints next to the app's own pages, without authentication:

* ``/table/`` lists the app's tables and ``/table/{name}/{key}/`` reads any key: table *data*;
* ``/router/`` tells which worker owns a table key: the URLs of every other worker;
* ``/`` and ``/assignment/`` (the statistics pages, on with ``debug``): every sensor's counters and
  this worker's partitions; ``/graph/`` (also with ``debug``) the worker's service tree;
* ``/performance/`` (off by default): the monitor's figures as JSON.

faust-streaming 0.15 gives each of them a setting (``web_tables_enabled``, ``web_router_enabled``,
``web_stats_enabled``, ``web_graph_enabled``, ``web_metrics_enabled``); Faust reads them when it
builds ``app.web`` and mounts only the enabled blueprints, while pages the app registers itself
(``@app.page``) are always served. :func:`builtin_pages_off` gives those settings, all off, as
keyword arguments of :class:`faust.App`. With the statistics off, ``/`` answers
``{"status": "OK"}`` (Faust's production index) and nothing else.

The service keeps no routed tables (no ``@app.table_route``), so ``/router/`` serves nobody; a
service that routes table reads between workers needs it back (``web_router_enabled=True``).
Faust's environment variables (``APP_WEB_TABLES_ENABLED=true``, ...) still win over these
arguments: an operator can turn a page back on deliberately.

>>> import faust
>>> app = faust.App("web-doc", broker="memory://", **builtin_pages_off())
>>> app.conf.web_tables_enabled, app.conf.web_router_enabled, app.conf.web_stats_enabled
(False, False, False)
"""
from __future__ import annotations

#: Faust's settings for its built-in pages (faust-streaming 0.15); a page whose setting is false is not mounted.
BUILTIN_PAGE_SETTINGS = ("web_tables_enabled", "web_router_enabled", "web_stats_enabled", "web_graph_enabled",
                         "web_metrics_enabled")


def builtin_pages_off() -> dict[str, bool]:
    """:class:`faust.App` keyword arguments that turn off every built-in page (see the module doc).

    >>> sorted(builtin_pages_off().items())[:2]
    [('web_graph_enabled', False), ('web_metrics_enabled', False)]
    """
    return {name: False for name in BUILTIN_PAGE_SETTINGS}

