# Build: docker build -t revisit .   (used by docker-compose.yml)
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin revisit

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates tzdata curl \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/revisit /usr/local/bin/revisit
WORKDIR /app
COPY config ./config
COPY examples ./examples
# Uploads through the API (a named volume takes this folder's owner when first mounted).
RUN mkdir -p /app/data/uploads && chown nobody /app/data/uploads
USER nobody
ENTRYPOINT ["revisit"]
CMD ["worker"]
