import Testing

@Test func placeholder_HarnessTests() { #expect(Bool(true)) }
