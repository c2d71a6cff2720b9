# A local stand-in for python:3.11-slim-bookworm, which cannot be pulled here: Debian
# bookworm (debootstrap, imported as moisson-standin/debian:bookworm) with Debian's own
# Python 3.11. Only the compose test builds it; the shipped Dockerfile is unchanged.
# It also trusts the host's extra CA certificates (certs/), so that pip reaches PyPI
# through this machine's egress proxy; the official image has no such certificates.
FROM moisson-standin/debian:bookworm
RUN apt-get update -q \
 && apt-get install -y -q --no-install-recommends python3 python3-venv ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && ln -s /usr/bin/python3 /usr/local/bin/python
COPY certs/ /usr/local/share/ca-certificates/
RUN update-ca-certificates
ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt LANG=C.UTF-8
