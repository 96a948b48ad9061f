//! Endpoints a listener binds: `host:port`, checked without resolving anything (validation does no I/O).

/// The address to bind for an endpoint: `:4317` (the Collector's "every interface") becomes `0.0.0.0:4317`.
pub fn bind_address(endpoint: &str) -> String {
    if endpoint.starts_with(':') {
        format!("0.0.0.0{endpoint}")
    } else {
        endpoint.to_owned()
    }
}

/// Checks the `host:port` shape of a listener endpoint; the message quotes the endpoint and says what is wrong.
pub fn check_listen(endpoint: &str) -> Result<(), String> {
    let address = bind_address(endpoint);
    if address.parse::<std::net::SocketAddr>().is_ok() {
        return Ok(());
    }
    let Some((host, port)) = address.rsplit_once(':') else {
        return Err(format!("`{endpoint}` is not `host:port`"));
    };
    if host.is_empty() || host.contains(':') && !(host.starts_with('[') && host.ends_with(']')) {
        return Err(format!(
            "`{endpoint}` is not `host:port` (write IPv6 addresses as `[::1]:4317`)"
        ));
    }
    port.parse::<u16>()
        .map(|_| ())
        .map_err(|_| format!("`{endpoint}` has no valid port (0-65535)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_endpoints() {
        assert_eq!(bind_address(":4317"), "0.0.0.0:4317");
        assert_eq!(bind_address("localhost:4318"), "localhost:4318");
        assert!(check_listen("localhost:4318").is_ok());
        assert!(check_listen("[::1]:4317").is_ok());
        assert!(check_listen("::1:4317").is_err());
        assert!(check_listen("localhost").is_err());
        assert!(check_listen("localhost:99999").is_err());
    }
}
