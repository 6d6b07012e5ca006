# errand in one image; the same image runs the web side and the workers.
#
#   docker build -t errand .
#   docker run --rm -p 8080:8080 -e ERRAND_REDIS__ADDR=redis:6379 errand
#
# The worker is the same image with another command:
#
#   docker run --rm -e ERRAND_REDIS__ADDR=redis:6379 errand \
#       worker --config /etc/errand/config.toml
#
# Any setting can be overridden with ERRAND_<SECTION>__<KEY>, or replace the
# whole file by mounting one at /etc/errand/config.toml. The SQLite database
# defaults to file:errand.db in the working directory, which goes away with
# the container: keep it on a volume writable by nonroot (uid 65532), e.g.
# -v errand-data:/data -e ERRAND_DATABASE__URL=file:/data/errand.db.
#
# The image has no shell or curl: a serve container's healthcheck is
#   errand healthcheck --config /etc/errand/config.toml   (GET /readyz)
# It is not a HEALTHCHECK here because the same image runs the workers, which
# serve no HTTP. deploy/compose.yaml runs the whole stack from this file.

FROM golang:1.26-bookworm AS build
WORKDIR /src
# Modules first, so this layer is reused until go.mod or go.sum change.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/errand ./cmd/errand

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/errand /usr/local/bin/errand
COPY config.toml /etc/errand/config.toml
USER nonroot:nonroot
# The default database (file:errand.db) lands here, writable by nonroot; mount
# a volume on it to keep it.
WORKDIR /home/nonroot
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/errand"]
CMD ["serve", "--config", "/etc/errand/config.toml"]
