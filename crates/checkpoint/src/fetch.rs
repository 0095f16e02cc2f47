//! Bounded whole-object reads.

use crate::error::{Error, Result};

/// Reads an object whole, refusing more than `limit` bytes. `None` if absent.
pub(crate) async fn get_bounded(
    store: &dyn object_store::ObjectStore,
    path: &object_store::path::Path,
    limit: u64,
) -> Result<Option<Vec<u8>>> {
    use futures::StreamExt;
    use object_store::ObjectStoreExt;
    let got = match store.get(path).await {
        Ok(g) => g,
        Err(object_store::Error::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(Error::storage("get", path, e)),
    };
    let too_big = || Error::Corrupt {
        path: path.to_string(),
        reason: format!("object larger than the {limit}-byte limit"),
    };
    if got.meta.size > limit {
        return Err(too_big());
    }
    let mut out = Vec::with_capacity(usize::try_from(got.meta.size).unwrap_or(0));
    let mut stream = got.into_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| Error::storage("get", path, e))?;
        if (out.len() + chunk.len()) as u64 > limit {
            return Err(too_big());
        }
        out.extend_from_slice(&chunk);
    }
    Ok(Some(out))
}
