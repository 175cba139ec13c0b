import Testing

@Test func placeholder_PlatformTests() { #expect(Bool(true)) }
