import Testing

@Test func placeholder_DMAEngineTests() { #expect(Bool(true)) }
