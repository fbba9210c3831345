/// bam-mix's version: the one place it is written (`bam-mix --version`, the git tag of a release,
/// CHANGELOG.md's heading).
public enum BamMixVersion {
    public static let current = "0.10.0"
}
