"""Anomaly rules and alerting, read like Prometheus Alertmanager.

* :mod:`alerts.config` – the rules file (rules, routes, receivers, inhibition), validated with the
  file, line and field of every error;
* :mod:`alerts.detect` – detectors as pure functions over per-minute aggregates;
* :mod:`alerts.lifecycle` – pending -> firing -> resolved, in event time;
* :mod:`alerts.evaluate` – the evaluator: parameterized SQL over the aggregate tables, driven by the
  watermark;
* :mod:`alerts.dispatch` – grouping (group_wait, group_interval, repeat_interval) into notifications;
* :mod:`alerts.silence`, :mod:`alerts.inhibit` – muting;
* :mod:`alerts.notify` – notifiers behind one interface, retries in one place (webhooks signed per
  Standard Webhooks, Grafana annotations, the log).
"""
