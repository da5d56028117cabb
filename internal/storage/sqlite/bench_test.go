package sqlite_test

import (
	"testing"

	"github.com/setpoint/setpoint/internal/storage/storagetest"
)

func BenchmarkCreate1(b *testing.B)          { storagetest.BenchCreate(b, factory, 1) }
func BenchmarkCreate32(b *testing.B)         { storagetest.BenchCreate(b, factory, 32) }
func BenchmarkUpdate32(b *testing.B)         { storagetest.BenchUpdate(b, factory, 32) }
func BenchmarkListSelector100k(b *testing.B) { storagetest.BenchListSelector(b, factory, 100000) }
func BenchmarkGet(b *testing.B)              { storagetest.BenchGet(b, factory) }
