import Foundation
import Testing

@testable import Privacy

@Suite("The export's index.html")
struct ExportIndexTests {
    @Test("names from the archive are escaped, so a crafted table or column name cannot inject markup")
    func escapesEverything() {
        let manifest = ExportManifest(
            tenant: "t", subject: "<img src=x onerror=alert(1)>", requestID: nil, generatedAt: "2026-12-06T00:00:00Z",
            policyVersion: "sha256:\"'&",
            files: [
                .init(name: "a\"><script>x</script>.csv", table: "public.<b>", format: "csv", rows: 2, bytes: 1, sha256: "00")
            ], withheldColumns: ["public.<b>": ["<i>secret</i>"]], encrypted: false)
        let html = ExportIndex.html(manifest)
        #expect(!html.contains("<script>") && !html.contains("<img") && !html.contains("<b>") && !html.contains("<i>"))
        #expect(html.contains("href=\"a&quot;&gt;&lt;script&gt;x&lt;/script&gt;.csv\""))
        #expect(html.contains("&lt;i&gt;secret&lt;/i&gt;"))
        #expect(HTMLText.escape("&<>\"'") == "&amp;&lt;&gt;&quot;&#39;")
    }
}
