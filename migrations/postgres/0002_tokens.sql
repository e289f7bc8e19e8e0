-- Bearer tokens. Only the SHA-256 of a token is kept: a dump of the database holds no token
-- that could be used. Tokens are 256 random bits, so a fast hash is enough.
create table tokens (
    name text collate "C" primary key,
    role text not null check (role in ('admin', 'manufacturer', 'coordinator', 'auditor')),
    token_hash text not null unique check (length(token_hash) = 64),
    created_at text not null,
    expires_at text,
    revoked_at text
);
