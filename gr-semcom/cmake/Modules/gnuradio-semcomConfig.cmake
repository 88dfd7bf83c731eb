find_package(PkgConfig)

PKG_CHECK_MODULES(PC_GR_SEMCOM gnuradio-semcom)

FIND_PATH(
    GR_SEMCOM_INCLUDE_DIRS
    NAMES gnuradio/semcom/api.h
    HINTS $ENV{SEMCOM_DIR}/include
        ${PC_SEMCOM_INCLUDEDIR}
    PATHS ${CMAKE_INSTALL_PREFIX}/include
          /usr/local/include
          /usr/include
)

FIND_LIBRARY(
    GR_SEMCOM_LIBRARIES
    NAMES gnuradio-semcom
    HINTS $ENV{SEMCOM_DIR}/lib
        ${PC_SEMCOM_LIBDIR}
    PATHS ${CMAKE_INSTALL_PREFIX}/lib
          ${CMAKE_INSTALL_PREFIX}/lib64
          /usr/local/lib
          /usr/local/lib64
          /usr/lib
          /usr/lib64
          )

include("${CMAKE_CURRENT_LIST_DIR}/gnuradio-semcomTarget.cmake")

INCLUDE(FindPackageHandleStandardArgs)
FIND_PACKAGE_HANDLE_STANDARD_ARGS(GR_SEMCOM DEFAULT_MSG GR_SEMCOM_LIBRARIES GR_SEMCOM_INCLUDE_DIRS)
MARK_AS_ADVANCED(GR_SEMCOM_LIBRARIES GR_SEMCOM_INCLUDE_DIRS)
