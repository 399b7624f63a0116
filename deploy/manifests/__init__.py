"""Deployment manifests of every Freightline service: the Kubernetes resources generated from the code's own lists
(the services and their ports, the topic catalogue, the Prometheus rules, the Grafana dashboards), and what the
consistency tests read back from the committed images, compose file and manifests.

``python -m deploy.manifests`` rewrites the generated files under ``deploy/k8s/``; ``--check`` fails when a
committed file differs from what the generator writes. See ``deploy/README.md``.
"""
