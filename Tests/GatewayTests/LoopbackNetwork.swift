import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// This machine's own name, which the resolver answers offline (/etc/hosts: loopback, or the
/// container's private address) and which the literal classifier reads as a public name: the
/// stand-in for a name that resolves inside the network, with no DNS needed.
func ownHostName() -> String {
    var buffer = [CChar](repeating: 0, count: 256)
    _ = gethostname(&buffer, buffer.count)
    return String(cString: buffer)
}

/// A TCP socket bound to a free port on 127.0.0.1 (not listening yet); the caller closes it.
func boundLoopbackSocket() throws -> (descriptor: Int32, port: Int) {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw POSIXError(.EMFILE) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
    }
    guard bound else {
        close(fd)
        throw POSIXError(.EADDRINUSE)
    }
    return (fd, Int(UInt16(bigEndian: address.sin_port)))
}
