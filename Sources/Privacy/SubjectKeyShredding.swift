import Foundation
import Postgres

/// Crypto-shreds the subject's data-encryption key inside the erasure's transaction: once the
/// wrapped key is gone, every ciphertext sealed under it (secrets, their versions, backups of
/// them) is unreadable. Returns whether a live key was destroyed.
///
/// The one call site of shredding; the Keyring module's equivalent replaces this body when merged.
func shredSubjectKey(_ connection: Connection, tenant: UUID, subject: UUID) throws -> Bool {
    try connection.query(
        "UPDATE keyring.subject_keys SET nonce = NULL, wrapped_key = NULL, destroyed_at = now() "
            + "WHERE tenant_id = $1 AND user_id = $2 AND destroyed_at IS NULL",
        [tenant, subject]).affectedRows > 0
}
