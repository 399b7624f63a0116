"""Settings of the Schema Registry server (environment prefix ``SCHEMA_REGISTRY_SERVER_``)."""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from schemas.compatibility import CompatibilityLevel
from services.common.settings import (
    LOCAL_HOST,
    POSTGRES_DB,
    POSTGRES_PORT,
    POSTGRES_USER,
    SCHEMA_REGISTRY_PORT,
    RedactedSettings,
    check_libpq_tls,
    log_level,
    readable_file,
)


class RegistryServerSettings(RedactedSettings):
    """How the registry server listens, where it keeps its state and who may call it."""

    model_config = SettingsConfigDict(env_prefix="SCHEMA_REGISTRY_SERVER_", extra="ignore", case_sensitive=False)

    host: str = Field(default=LOCAL_HOST, description="SCHEMA_REGISTRY_SERVER_HOST: interface to bind.")
    port: int = Field(
        default=SCHEMA_REGISTRY_PORT, ge=0, le=65535, description="SCHEMA_REGISTRY_SERVER_PORT (0 = any free)."
    )
    database_dsn: str = Field(
        default=f"postgresql://{POSTGRES_USER}@{LOCAL_HOST}:{POSTGRES_PORT}/{POSTGRES_DB}",
        description="SCHEMA_REGISTRY_SERVER_DATABASE_DSN: libpq connection string of the state database.",
    )
    basic_auth_users: SecretStr | None = Field(
        default=None,
        description="SCHEMA_REGISTRY_SERVER_BASIC_AUTH_USERS: 'user:password,user2:password2' (secret): the admin "
        "role (every operation). When neither this nor READ_ONLY_USERS is set, no authentication is required.",
    )
    read_only_users: SecretStr | None = Field(
        default=None,
        description="SCHEMA_REGISTRY_SERVER_READ_ONLY_USERS: 'user:password,...' (secret): the read-only role "
        "(fetch schemas, subjects, versions, config and mode, look up and test compatibility; registering, changing "
        "compatibility or mode and deleting answer 403 with error code 40301).",
    )
    ssl_certfile: str | None = Field(
        default=None,
        description="SCHEMA_REGISTRY_SERVER_SSL_CERTFILE: PEM certificate (chain) of the server; with SSL_KEYFILE the "
        "registry serves HTTPS only (unset: plain HTTP).",
    )
    ssl_keyfile: str | None = Field(
        default=None, description="SCHEMA_REGISTRY_SERVER_SSL_KEYFILE: PEM private key of SSL_CERTFILE (secret file)."
    )
    default_compatibility: CompatibilityLevel = Field(
        default=CompatibilityLevel.BACKWARD,
        description="SCHEMA_REGISTRY_SERVER_DEFAULT_COMPATIBILITY: level used until a global one is set.",
    )
    workers: int = Field(default=1, ge=1, le=64, description="SCHEMA_REGISTRY_SERVER_WORKERS: processes.")
    log_level: str = Field(default="INFO", description="SCHEMA_REGISTRY_SERVER_LOG_LEVEL.")
    pool_max_size: int = Field(
        default=8, ge=1, le=100, description="SCHEMA_REGISTRY_SERVER_POOL_MAX_SIZE: connections per worker."
    )
    max_body_bytes: int = Field(
        default=8 * 1024 * 1024, ge=1024, description="SCHEMA_REGISTRY_SERVER_MAX_BODY_BYTES: request limit."
    )
    startup_timeout_s: float = Field(
        default=15.0,
        gt=0,
        description="SCHEMA_REGISTRY_SERVER_STARTUP_TIMEOUT_S: how long the database may take to answer at start-up.",
    )

    @field_validator("default_compatibility", mode="before")
    @classmethod
    def _level(cls, value: object) -> CompatibilityLevel:
        return CompatibilityLevel.parse(str(value))

    @field_validator("log_level")
    @classmethod
    def _log_level(cls, value: str) -> str:
        return log_level(value)

    @field_validator("database_dsn")
    @classmethod
    def _database_tls(cls, value: str) -> str:
        return check_libpq_tls(value)

    @field_validator("ssl_certfile", "ssl_keyfile")
    @classmethod
    def _readable_file(cls, value: str | None) -> str | None:
        return readable_file(value)

    @model_validator(mode="after")
    def _certificate_and_key(self) -> RegistryServerSettings:
        if (self.ssl_certfile is None) != (self.ssl_keyfile is None):
            missing = "SSL_KEYFILE" if self.ssl_keyfile is None else "SSL_CERTFILE"
            raise ValueError(f"SCHEMA_REGISTRY_SERVER_{missing} must be set too (HTTPS needs a certificate and a key)")
        return self

    @property
    def https(self) -> bool:
        return self.ssl_certfile is not None

    def users(self) -> dict[str, str]:
        """Every configured basic-auth user (name -> password), admins and read-only; empty: authentication off."""
        admins = _parse_users(self.basic_auth_users, "SCHEMA_REGISTRY_SERVER_BASIC_AUTH_USERS")
        readers = _parse_users(self.read_only_users, "SCHEMA_REGISTRY_SERVER_READ_ONLY_USERS")
        both = sorted(set(admins) & set(readers))
        if both:
            raise ValueError(f"SCHEMA_REGISTRY_SERVER_READ_ONLY_USERS: {both} are admins too (one role per user)")
        return {**admins, **readers}

    def read_only(self) -> frozenset[str]:
        """The names of the read-only users."""
        return frozenset(_parse_users(self.read_only_users, "SCHEMA_REGISTRY_SERVER_READ_ONLY_USERS"))


def _parse_users(value: SecretStr | None, variable: str) -> dict[str, str]:
    if value is None:
        return {}
    users: dict[str, str] = {}
    for entry in value.get_secret_value().split(","):
        entry = entry.strip()
        if not entry:
            continue
        name, sep, password = entry.partition(":")
        if not sep or not name or not password:
            raise ValueError(f"{variable} entries must be user:password")
        users[name] = password
    return users
