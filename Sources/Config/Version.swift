/// The one version of the package: `privacy-gateway --version` and `privacyctl --version` print it.
public enum PrivacyGatewayVersion {
    public static let string = "0.17.0"
}
