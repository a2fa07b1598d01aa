// Containers: Docker-style containers on top of bundles (ids, names, overlay roots, logs, monitor).
